"""Websocket wire format: header-only frame tracking and the few frames ngxws writes itself."""
