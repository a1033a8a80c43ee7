"""Drives a panel through the Python client openapi-python-client generated from /openapi.json.

Usage: python python-generated-client.py BASE_URL PANEL_DEFINITION_JSON  (the package wk_client on
PYTHONPATH). Prints one JSON object: what each call returned, by model class name and fields.
"""
import json
import sys

from wk_client import Client
from wk_client.api.panels import create_panel, get_panel, get_panel_state, trigger_tool
from wk_client.models import PanelDefinition, TriggerBody

base, definition = sys.argv[1], json.loads(sys.argv[2])
client = Client(base_url=base, raise_on_unexpected_status=True)

created = create_panel.sync(client=client, body=PanelDefinition.from_dict(definition))
ran = trigger_tool.sync(client=client, id=created.id, tool="inc", body=TriggerBody.from_dict({"args": {"by": 2}}))
state = get_panel_state.sync(client=client, id=created.id)
missing = get_panel.sync(client=client, id="nope")

print(json.dumps({
    "created": [type(created).__name__, created.id, type(created.status).__name__, created.status.value, created.ws_url],
    "ran": [type(ran).__name__, type(ran.status).__name__, ran.status.value, ran.return_value, ran.version],
    "state": [type(state).__name__, state.state.to_dict(), state.version],
    "missing": [type(missing).__name__, missing.status_code, missing.code],
}))
