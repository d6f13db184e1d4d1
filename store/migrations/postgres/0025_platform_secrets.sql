-- Secrets every process of a deployment shares (the key gateways derive auth codes from):
-- created once, by whichever process asks first (store.platform_secrets).
CREATE TABLE IF NOT EXISTS platform_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
