//! Which parts of the saga a worker process runs, and on which task queues.
//!
//! | roles | polls | runs steps as (default) |
//! |---|---|---|
//! | `all` (the default) | the workflow queue (workflows, and every activity) and each service's queue | local activities |
//! | any of `workflow`, `orders`, `payments`, `inventory`, `notifications` | the workflow queue for `workflow`; each service role its service's queue, with only its own activities and its own database | regular activities on each service's queue |
//!
//! The queues are the same whatever the topology: regular activities always go to their
//! service's queue, and the all-in-one worker polls those queues too. So a deployment can change
//! shape with sagas in flight — an all-in-one worker replaced by split ones, or the reverse —
//! and every step still finds a worker: steps already recorded replay as they ran (the dispatch
//! choice is recorded per step, see `saga_workflows`), pending regular activities wait on their
//! service's queue for whichever process serves it. One process may run several roles (one SDK
//! worker per queue), and any number of processes may run the same role on any number of hosts.

use saga_activities::Service;
use saga_workflows::{Dispatch, Patience, Routing, SagaConfig};

/// One part of the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// Everything in one process, on one task queue (the default).
    All,
    /// The `OrderSaga` workflow, on the workflow task queue.
    Workflow,
    Orders,
    Payments,
    Inventory,
    Notifications,
}

impl Role {
    fn service(self) -> Option<Service> {
        match self {
            Role::Orders => Some(Service::Orders),
            Role::Payments => Some(Service::Payments),
            Role::Inventory => Some(Service::Inventory),
            Role::Notifications => Some(Service::Notifications),
            Role::All | Role::Workflow => None,
        }
    }
}

/// The task queue of each service when the roles are split.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServiceQueues {
    /// Task queue of the orders service's activities (split roles only).
    #[arg(long, env = "SAGA_ORDERS_QUEUE", default_value = "orders")]
    pub orders_queue: String,
    /// Task queue of the payments service's activities (split roles only).
    #[arg(long, env = "SAGA_PAYMENTS_QUEUE", default_value = "payments")]
    pub payments_queue: String,
    /// Task queue of the inventory service's activities (split roles only).
    #[arg(long, env = "SAGA_INVENTORY_QUEUE", default_value = "inventory")]
    pub inventory_queue: String,
    /// Task queue of the notifications service's activities (split roles only).
    #[arg(
        long,
        env = "SAGA_NOTIFICATIONS_QUEUE",
        default_value = "notifications"
    )]
    pub notifications_queue: String,
}

impl Default for ServiceQueues {
    fn default() -> Self {
        Self {
            orders_queue: "orders".into(),
            payments_queue: "payments".into(),
            inventory_queue: "inventory".into(),
            notifications_queue: "notifications".into(),
        }
    }
}

impl ServiceQueues {
    pub fn of(&self, service: Service) -> &str {
        match service {
            Service::Orders => &self.orders_queue,
            Service::Payments => &self.payments_queue,
            Service::Inventory => &self.inventory_queue,
            Service::Notifications => &self.notifications_queue,
        }
    }
}

/// The roles one process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Default for Roles {
    fn default() -> Self {
        Self(vec![Role::All])
    }
}

/// A role choice that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RolesError {
    #[error(
        "no role given; use --role all or a list of workflow, orders, payments, inventory, notifications"
    )]
    Empty,
    #[error("--role all already runs every role; do not combine it with other roles")]
    AllCombined,
    #[error(
        "--dispatch local runs every step inside the workflow worker, which needs every role in \
         one process: use --role all, or leave --dispatch at auto (remote for split roles)"
    )]
    LocalDispatchSplit,
    #[error(
        "task queue `{0}` is given to two roles; each service (and the workflow) needs a queue of \
         its own when the roles are split"
    )]
    SharedQueue(String),
}

/// One SDK worker of a process: a task queue and what it runs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlan {
    pub task_queue: String,
    pub workflow: bool,
    pub services: Vec<Service>,
}

impl Roles {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Result<Self, RolesError> {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort_unstable();
        roles.dedup();
        match roles.as_slice() {
            [] => Err(RolesError::Empty),
            [Role::All] => Ok(Self(roles)),
            r if r.contains(&Role::All) => Err(RolesError::AllCombined),
            _ => Ok(Self(roles)),
        }
    }

    /// True for the one-process, one-queue setup.
    pub fn is_all(&self) -> bool {
        self.0 == [Role::All]
    }

    pub fn runs_workflow(&self) -> bool {
        self.is_all() || self.0.contains(&Role::Workflow)
    }

    /// The services whose activities (and databases) this process runs.
    pub fn services(&self) -> Vec<Service> {
        if self.is_all() {
            return Service::ALL.to_vec();
        }
        self.0.iter().filter_map(|r| r.service()).collect()
    }

    /// Where the workflow schedules regular activities: always on each service's queue, so that
    /// any topology can serve them (see the module's table).
    pub fn routing(queues: &ServiceQueues) -> Routing {
        let queue = |s| Some(queues.of(s).to_owned());
        Routing {
            orders: queue(Service::Orders),
            payments: queue(Service::Payments),
            inventory: queue(Service::Inventory),
            notifications: queue(Service::Notifications),
        }
    }

    /// The workflow's configuration, or why these roles cannot run it.
    pub fn saga_config(
        &self,
        dispatch: DispatchChoice,
        queues: &ServiceQueues,
        patience: Patience,
    ) -> Result<SagaConfig, RolesError> {
        let preferred = match dispatch {
            DispatchChoice::Auto if self.is_all() => Dispatch::Local,
            DispatchChoice::Auto | DispatchChoice::Remote => Dispatch::Remote,
            DispatchChoice::Local if self.is_all() => Dispatch::Local,
            DispatchChoice::Local => return Err(RolesError::LocalDispatchSplit),
        };
        Ok(SagaConfig {
            routing: Self::routing(queues),
            dispatch: preferred,
            // Workers that did not record their choice ran what --dispatch said, remote unless
            // told otherwise.
            legacy_dispatch: match dispatch {
                DispatchChoice::Local => Dispatch::Local,
                DispatchChoice::Auto | DispatchChoice::Remote => Dispatch::Remote,
            },
            patience,
        })
    }

    /// The SDK workers this process runs: one per task queue.
    pub fn plan(
        &self,
        workflow_queue: &str,
        queues: &ServiceQueues,
    ) -> Result<Vec<QueuePlan>, RolesError> {
        // Distinct queues, checked over every service and not only this process's, so that
        // every process of a deployment refuses the same mistake.
        let mut names = vec![workflow_queue];
        for service in Service::ALL {
            let queue = queues.of(service);
            if names.contains(&queue) {
                return Err(RolesError::SharedQueue(queue.to_owned()));
            }
            names.push(queue);
        }
        let mut plan = Vec::new();
        if self.runs_workflow() {
            plan.push(QueuePlan {
                task_queue: workflow_queue.to_owned(),
                workflow: true,
                // All in one: the workflow's local activities run here, and so do regular
                // activities that older versions scheduled on the workflow's own queue.
                services: if self.is_all() {
                    Service::ALL.to_vec()
                } else {
                    vec![]
                },
            });
        }
        plan.extend(self.services().into_iter().map(|service| QueuePlan {
            task_queue: queues.of(service).to_owned(),
            workflow: false,
            services: vec![service],
        }));
        Ok(plan)
    }
}

/// `--dispatch`: how the workflow runs its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DispatchChoice {
    /// By topology: local activities when one process runs every role, regular activities when
    /// the roles are split.
    #[default]
    Auto,
    /// Local activities in the workflow worker's process (needs `--role all`).
    Local,
    /// Regular activities on each service's task queue.
    Remote,
}

impl DispatchChoice {
    /// What a starter names in the start request ([`crate::launch::name_dispatch`]): the mode
    /// forced, or nothing for `auto`, which only the worker's topology decides.
    pub fn named(self) -> Option<Dispatch> {
        match self {
            Self::Auto => None,
            Self::Local => Some(Dispatch::Local),
            Self::Remote => Some(Dispatch::Remote),
        }
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum as _;
        for (i, role) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if let Some(value) = role.to_possible_value() {
                f.write_str(value.get_name())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_polls_every_queue_and_runs_steps_locally() {
        let roles = Roles::default();
        let queues = ServiceQueues::default();
        let plan = roles.plan("order-saga", &queues).unwrap();
        assert_eq!(
            plan[0],
            QueuePlan {
                task_queue: "order-saga".into(),
                workflow: true,
                services: Service::ALL.to_vec(),
            }
        );
        let served: Vec<&str> = plan[1..].iter().map(|p| p.task_queue.as_str()).collect();
        assert_eq!(served, ["orders", "payments", "inventory", "notifications"]);
        let config = roles
            .saga_config(DispatchChoice::Auto, &queues, Patience::default())
            .unwrap();
        assert_eq!(config.dispatch, Dispatch::Local);
        assert_eq!(config.legacy_dispatch, Dispatch::Remote);
        assert_eq!(
            config.routing.queue_of("ProcessRefund").as_deref(),
            Some("payments")
        );
        let explicit = roles
            .saga_config(DispatchChoice::Local, &queues, Patience::default())
            .unwrap();
        assert_eq!(explicit.legacy_dispatch, Dispatch::Local);
        let remote = roles
            .saga_config(DispatchChoice::Remote, &queues, Patience::default())
            .unwrap();
        assert_eq!(remote.dispatch, Dispatch::Remote);
    }

    #[test]
    fn split_roles_route_every_service_and_poll_their_own_queues() {
        let queues = ServiceQueues {
            payments_queue: "pay".into(),
            ..Default::default()
        };
        let roles = Roles::new([Role::Payments, Role::Workflow, Role::Payments]).unwrap();
        let config = roles
            .saga_config(DispatchChoice::Auto, &queues, Patience::default())
            .unwrap();
        assert_eq!(config.dispatch, Dispatch::Remote);
        assert_eq!(
            config.routing.queue_of("ProcessRefund").as_deref(),
            Some("pay")
        );
        assert_eq!(
            config.routing.queue_of("Notify").as_deref(),
            Some("notifications")
        );
        assert_eq!(
            roles.plan("order-saga", &queues).unwrap(),
            vec![
                QueuePlan {
                    task_queue: "order-saga".into(),
                    workflow: true,
                    services: vec![],
                },
                QueuePlan {
                    task_queue: "pay".into(),
                    workflow: false,
                    services: vec![Service::Payments],
                },
            ]
        );
        let inventory = Roles::new([Role::Inventory]).unwrap();
        assert!(!inventory.runs_workflow());
        assert_eq!(inventory.services(), vec![Service::Inventory]);
    }

    #[test]
    fn refuses_what_cannot_run() {
        let queues = ServiceQueues::default();
        assert_eq!(Roles::new([]), Err(RolesError::Empty));
        assert_eq!(
            Roles::new([Role::All, Role::Orders]),
            Err(RolesError::AllCombined)
        );
        let split = Roles::new([Role::Workflow]).unwrap();
        assert_eq!(
            split.saga_config(DispatchChoice::Local, &queues, Patience::default()),
            Err(RolesError::LocalDispatchSplit)
        );
        let shared = ServiceQueues {
            inventory_queue: "orders".into(),
            ..Default::default()
        };
        assert_eq!(
            split.plan("order-saga", &shared),
            Err(RolesError::SharedQueue("orders".into()))
        );
        assert!(Roles::default().plan("order-saga", &shared).is_err());
        let onto_workflow = ServiceQueues {
            notifications_queue: "order-saga".into(),
            ..Default::default()
        };
        assert!(split.plan("order-saga", &onto_workflow).is_err());
    }
}
