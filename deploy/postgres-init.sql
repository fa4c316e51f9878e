-- One database per saga service on the compose PostgreSQL, for the split deployment
-- (docker-compose.split.yml). The entrypoint runs this once, when the data volume is empty.
CREATE DATABASE saga_orders;
CREATE DATABASE saga_payments;
CREATE DATABASE saga_inventory;
CREATE DATABASE saga_notifications;
