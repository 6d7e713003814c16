"""Where accounting ends up: the ws_stat page and the ws_log files."""
