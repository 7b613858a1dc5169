"""chef-server-ctl: operators' commands, talking to the API signed as the superuser (as Chef's does)."""
