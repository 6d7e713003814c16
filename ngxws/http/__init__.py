"""HTTP/1.1 heads: parsed requests, the upstream request nginx would send, nginx-style error responses."""
