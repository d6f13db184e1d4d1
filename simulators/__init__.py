"""Simulated tracker fleets: JT808 over TCP or MQTT, load tests and scenario files."""
