//! The booking service: one SQLite database of bookings, and the six activities that book and
//! cancel. Each activity is one local transaction and idempotent: booking what is booked, or
//! cancelling what is cancelled, changes nothing.
//!
//! Failures are injected by the trip id's first character, after the transaction commits (a
//! step that fails may have committed, which is why the saga compensates the failing step too):
//! `1` BookFlight, `2` BookHotel, `3` BookCar, `4` BookCar and then CancelHotel, which fails
//! before it commits, so the hotel stays booked.

use crate::trip::Trip;
use sqlx::{SqlitePool, sqlite::SqliteConnectOptions};
use std::{path::Path, sync::Arc};
use temporalio_macros::activities;
use temporalio_sdk::{
    ApplicationFailure,
    activities::{ActivityContext, ActivityError},
};

pub struct Bookings {
    pool: SqlitePool,
}

impl Bookings {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS bookings (trip_id TEXT NOT NULL, kind TEXT NOT NULL, \
             reference TEXT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (trip_id, kind))",
            // Which activities ran for a trip, in the order they first committed.
            "CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
             trip_id TEXT NOT NULL, activity TEXT NOT NULL, UNIQUE (trip_id, activity))",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    /// What is booked for `trip_id` now: `flight`, `hotel`, `car`.
    pub async fn booked(&self, trip_id: &str) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT kind FROM bookings WHERE trip_id = $1 AND status = 'booked' ORDER BY kind",
        )
        .bind(trip_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The activities that committed for `trip_id`, in order.
    pub async fn journal(&self, trip_id: &str) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT activity FROM journal WHERE trip_id = $1 ORDER BY seq")
                .bind(trip_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn book(&self, activity: &str, kind: &str, trip: Trip) -> Result<Trip, ActivityError> {
        let reference = format!("{kind}-{}", trip.trip_id);
        let mut tx = self.pool.begin().await.map_err(retryable)?;
        sqlx::query(
            "INSERT INTO bookings (trip_id, kind, reference, status) VALUES ($1, $2, $3, \
             'booked') ON CONFLICT (trip_id, kind) DO NOTHING",
        )
        .bind(&trip.trip_id)
        .bind(kind)
        .bind(&reference)
        .execute(&mut *tx)
        .await
        .map_err(retryable)?;
        journal(&mut tx, &trip.trip_id, activity).await?;
        tx.commit().await.map_err(retryable)?;
        injected(activity, &trip.trip_id)?;
        let mut trip = trip;
        let slot = match kind {
            "flight" => &mut trip.flight,
            "hotel" => &mut trip.hotel,
            _ => &mut trip.car,
        };
        *slot = Some(reference);
        Ok(trip)
    }

    async fn cancel(&self, activity: &str, kind: &str, trip: Trip) -> Result<Trip, ActivityError> {
        // A cancellation that fails here has not committed: what it was to cancel stays booked.
        injected(activity, &trip.trip_id)?;
        let mut tx = self.pool.begin().await.map_err(retryable)?;
        sqlx::query(
            "UPDATE bookings SET status = 'cancelled' WHERE trip_id = $1 AND kind = $2 AND \
             status = 'booked'",
        )
        .bind(&trip.trip_id)
        .bind(kind)
        .execute(&mut *tx)
        .await
        .map_err(retryable)?;
        journal(&mut tx, &trip.trip_id, activity).await?;
        tx.commit().await.map_err(retryable)?;
        Ok(trip)
    }
}

async fn journal(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    trip_id: &str,
    activity: &str,
) -> Result<(), ActivityError> {
    sqlx::query("INSERT INTO journal (trip_id, activity) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(trip_id)
        .bind(activity)
        .execute(&mut **tx)
        .await
        .map_err(retryable)?;
    Ok(())
}

/// The activities that fail for a trip id, by its first character.
pub fn failing_activities(trip_id: &str) -> &'static [&'static str] {
    match trip_id.chars().next() {
        Some('1') => &["BookFlight"],
        Some('2') => &["BookHotel"],
        Some('3') => &["BookCar"],
        Some('4') => &["BookCar", "CancelHotel"],
        _ => &[],
    }
}

fn injected(activity: &str, trip_id: &str) -> Result<(), ActivityError> {
    if failing_activities(trip_id).contains(&activity) {
        let failure = ApplicationFailure::builder(format!("{activity} failed for trip {trip_id}"))
            .type_name(format!("Err{activity}"))
            .non_retryable(true)
            .build();
        return Err(ActivityError::application(failure));
    }
    Ok(())
}

/// A database error: retried by the saga's rounds until the database answers.
fn retryable(error: sqlx::Error) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(format!("bookings database: {error}")).build(),
    )
}

#[activities]
impl Bookings {
    #[activity(name = "BookFlight")]
    pub async fn book_flight(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.book("BookFlight", "flight", trip).await
    }

    #[activity(name = "CancelFlight")]
    pub async fn cancel_flight(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.cancel("CancelFlight", "flight", trip).await
    }

    #[activity(name = "BookHotel")]
    pub async fn book_hotel(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.book("BookHotel", "hotel", trip).await
    }

    #[activity(name = "CancelHotel")]
    pub async fn cancel_hotel(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.cancel("CancelHotel", "hotel", trip).await
    }

    #[activity(name = "BookCar")]
    pub async fn book_car(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.book("BookCar", "car", trip).await
    }

    #[activity(name = "CancelCar")]
    pub async fn cancel_car(
        self: Arc<Self>,
        _ctx: ActivityContext,
        trip: Trip,
    ) -> Result<Trip, ActivityError> {
        self.cancel("CancelCar", "car", trip).await
    }
}
