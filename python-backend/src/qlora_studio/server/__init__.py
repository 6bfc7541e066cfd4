"""The backend server: WebSocket protocol (protocol.py), handlers, run supervisor (runs.py),
event log tailing (tail.py) and the `serve` command (cli.py). Import-light: nothing here pulls in
torch until a handler needs it."""
