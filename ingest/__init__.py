"""Ingestion: the JT/T 808 protocol core, the TCP gateway, the MQTT bridge and the journal."""
