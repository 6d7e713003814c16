"""The asyncio side: client connections, upstream connections, websocket tunnels."""
