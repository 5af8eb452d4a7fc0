-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- Temporal's two databases are created by temporal-schema (temporal-sql-tool create);
-- Slipway's gateway gets a role and a database of its own.
CREATE ROLE slipway LOGIN PASSWORD 'slipway';
CREATE DATABASE slipway OWNER slipway;
