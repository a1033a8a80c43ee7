"""A seed-001 WebSocket client written with the `websockets` library (pip install websockets).

Usage: python3 panel_ws_client.py <ws-url>
Connects, expects CONNECTED, sends TRIGGER inc {by: 2} -> collects PATCH/EVENT until RESULT,
sends PING -> PONG, sends a malformed frame -> ERROR PARSE_ERROR, and prints one JSON summary.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect


async def until(ws, wanted, seen):
    """Receive messages (appending their types to `seen`) until one of type `wanted` arrives."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        seen.append(msg["type"])
        if msg["type"] == wanted:
            return msg


async def main(url):
    out = {}
    async with connect(url) as ws:
        seen = []
        connected = await until(ws, "CONNECTED", seen)
        out["connected"] = {k: connected[k] for k in ("panelId", "state", "version", "tools")}

        seen = []
        await ws.send(json.dumps({"type": "TRIGGER", "tool": "inc", "args": {"by": 2}, "requestId": "py-1"}))
        result = await until(ws, "RESULT", seen)
        out["trigger_sequence"] = seen
        out["result"] = {"requestId": result["requestId"], "status": result["result"]["status"],
                         "returnValue": result["result"].get("returnValue")}

        seen = []
        await ws.send(json.dumps({"type": "PING", "requestId": "py-ping"}))
        pong = await until(ws, "PONG", seen)
        out["pong"] = pong

        seen = []
        await ws.send("{not json")
        error = await until(ws, "ERROR", seen)
        out["error_code"] = error["code"]
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
