"""The refresh job: keeps each wiki's pool of Add-a-Link tasks full (SPEC §3-§6)."""
