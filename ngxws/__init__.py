"""ngxws: nginx + ngx_http_websocket_stat_module, as a Python drop-in that reads the same nginx.conf."""

__version__ = "0.1.0"
