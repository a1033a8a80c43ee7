"""Drives one running kernel with jupyter_client's BlockingKernelClient (a real Jupyter client).

Usage: drive_kernel.py <connection_file>  — steps as a JSON list on stdin, results as a JSON list on stdout.
Steps:
  {"op": "kernel_info"}
  {"op": "execute", "code": "...", "allow_stdin": false, "stdin": ["line", ...],
   "interrupt": {"after_s": 1.0, "via": "signal" | "group" | "message", "pid": 123}}
  ("group" signals the kernel's whole process group, as jupyter_client's interrupt_kernel does)
  {"op": "is_complete" | "complete" | "inspect", "code": "..."}
  {"op": "shutdown"}
An execute result is {"reply": content, "iopub": [{"msg_type", "content"}, ...]} with the iopub messages
between status busy and idle (statuses left out); "input_requests" lists the input_request contents.
"""
import json
import os
import signal
import sys
import threading
import time

from jupyter_client.blocking.client import BlockingKernelClient

TIMEOUT = 60


def interrupt_later(kc, spec, replied):
    # A SIGINT that lands before the cell runs is lost (as with ipykernel), which a loaded machine makes
    # likely: like a user pressing interrupt again, repeat it every 3 s until the execute_reply arrives.
    time.sleep(spec["after_s"])
    while not replied.is_set():
        if spec["via"] == "signal":
            os.kill(spec["pid"], signal.SIGINT)
        elif spec["via"] == "group":
            os.killpg(spec["pid"], signal.SIGINT)
        else:
            kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        replied.wait(3)


def collect_iopub(kc, msg_id):
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return out
            continue
        out.append({"msg_type": msg["msg_type"], "content": msg["content"]})


def shell_reply(kc, msg_id):
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def execute(kc, step):
    answers = list(step.get("stdin", []))
    msg_id = kc.execute(step["code"], allow_stdin=step.get("allow_stdin", bool(answers)))
    replied = threading.Event()
    if "interrupt" in step:
        threading.Thread(target=interrupt_later, args=(kc, step["interrupt"], replied), daemon=True).start()
    requests = []
    while answers:
        req = kc.get_stdin_msg(timeout=TIMEOUT)
        requests.append(req["content"])
        kc.input(answers.pop(0))
    reply = shell_reply(kc, msg_id)
    replied.set()
    return {"reply": reply["content"], "iopub": collect_iopub(kc, msg_id), "input_requests": requests}


def run(kc, step):
    op = step["op"]
    if op == "execute":
        return execute(kc, step)
    if op == "kernel_info":
        return shell_reply(kc, kc.kernel_info())["content"]
    if op == "is_complete":
        return shell_reply(kc, kc.is_complete(step["code"]))["content"]
    if op == "complete":
        return shell_reply(kc, kc.complete(step["code"]))["content"]
    if op == "inspect":
        return shell_reply(kc, kc.inspect(step["code"]))["content"]
    if op == "shutdown":
        msg = kc.session.msg("shutdown_request", {"restart": False})
        kc.control_channel.send(msg)
        while True:
            reply = kc.control_channel.get_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]
    raise ValueError(f"unknown op {op}")


def main():
    kc = BlockingKernelClient()
    kc.load_connection_file(sys.argv[1])
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    results = [run(kc, step) for step in json.load(sys.stdin)]
    kc.stop_channels()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
