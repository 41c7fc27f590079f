"""The commands beyond LightningCLI's own (``compare``, ``sweep``) and what every command shares: one-message
errors, garbage-collection freezing, and the sweep's reports."""
