-- Secrets every process of a deployment shares: PostgreSQL's 0025.
CREATE TABLE IF NOT EXISTS platform_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
