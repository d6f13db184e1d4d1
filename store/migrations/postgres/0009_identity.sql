-- Terminal identity (contracts section 8): what a tracker said it was at its first 0x0100
-- registration (maker id, model, terminal id of the body) and, from a 2019 tracker, the IMEI of
-- its 0x0102. NULL: not recorded yet; the next registration records it. Only a re-provisioning
-- (the API, for replaced hardware) changes a recorded identity.
ALTER TABLE devices
    ADD COLUMN maker_id text,
    ADD COLUMN model text,
    ADD COLUMN terminal_id text,
    ADD COLUMN imei text;
