"""A minimal MQTT 3.1.1 client: a sans-IO codec and session (`codec`, `session`) and the
asyncio shell around them (`client`), built to move many small QoS 1 messages per read."""
