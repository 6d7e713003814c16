"""Traffic counters and the connection cap, shared by every worker process."""
