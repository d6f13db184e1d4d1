"""The engine's rules, one shape each (`base.Rule`): the settings a rule reads, the per-device
or per-vehicle state it carries, and its hits, which the engine turns into alerts."""
