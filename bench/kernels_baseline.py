"""Baselines of bench/kernels.ts: jupyter_client talking to ipykernel directly over ZeroMQ.

Prints one JSON object (times in ms): execute round trips of `x+=1` (reply + idle), start → ready
(KernelManager.start_kernel + wait_for_ready), and interrupt → error reply during time.sleep.
Usage: python3 kernels_baseline.py <executions> <warmups> <starts> <interrupts>
"""
import json
import sys
import time

from jupyter_client import KernelManager


def execute_times(kc, n, warmups):
    kc.execute_interactive("x = 0", timeout=30)
    out = []
    for i in range(n + warmups):
        t0 = time.perf_counter()
        kc.execute_interactive("x += 1", timeout=30, output_hook=lambda msg: None)
        if i >= warmups:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def start_times(n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        km = KernelManager(kernel_name="python3")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return out


def interrupt_times(km, kc, n):
    out = []
    for _ in range(n):
        msg_id = kc.execute("import time; time.sleep(30)")
        while True:  # wait until it runs
            msg = kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "execute_input" and msg["parent_header"].get("msg_id") == msg_id:
                break
        time.sleep(0.05)
        t0 = time.perf_counter()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
    return out


def main():
    n, warmups, starts, interrupts = (int(a) for a in sys.argv[1:5])
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        result = {"execute": execute_times(kc, n, warmups), "interrupt": interrupt_times(km, kc, interrupts)}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    result["start"] = start_times(starts)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
