"""jupyter_kernel_test (PyPI) against our javascript, typescript and pyodide kernels, python3 (ipykernel) as the control.

Usage: kernel_conformance.py <TestClass> ...  — kernelspecs come from JUPYTER_PATH (the tap test writes them).
Prints a JSON object {test id: "ok" | "skip: reason" | "fail: traceback"} on stdout.
"""
import json
import sys
import unittest

import jupyter_kernel_test as jkt


class KernelTests(jkt.KernelTests):
    """jupyter_kernel_test's KernelTests, waiting longer for each iopub message of an execution.

    Its execute_helper reads iopub with a 0.1 s timeout until `status: idle`; on a shared 2-core machine
    a kernel (ipykernel too) can take longer than that between two messages. What is checked is unchanged.
    """

    def execute_helper(self, *args, **kwargs):
        get_msg = self.kc.iopub_channel.get_msg
        self.kc.iopub_channel.get_msg = lambda timeout=None: get_msg(timeout=max(timeout or 0, 10))
        try:
            return super().execute_helper(*args, **kwargs)
        finally:
            del self.kc.iopub_channel.get_msg


class JavaScriptKernelTests(KernelTests):
    kernel_name = "javascript"
    language_name = "javascript"
    file_extension = ".js"
    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'
    completion_samples = [{"text": "Math.P", "matches": ["PI"]}]
    complete_code_samples = ["1", "let a = 1", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "let a = [1,"]
    invalid_code_samples = ["let = = 1", ")"]
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}, {"code": '"a" + "b"', "result": "'ab'"}]
    code_display_data = [{"code": 'display({"text/html": "<b>x</b>"})', "mime": "text/html"}]
    code_inspect_sample = "Math"
    code_clear_output = "display.clear()"


class TypeScriptKernelTests(JavaScriptKernelTests):
    kernel_name = "typescript"
    language_name = "typescript"
    file_extension = ".ts"
    code_hello_world = 'const greeting: string = "hello, world"; console.log(greeting)'
    complete_code_samples = ["1", "let a: number = 1", "function f(x: number): number { return x }"]
    incomplete_code_samples = ["function f(x: number) {", "interface A {"]
    code_execute_result = [{"code": "(1 as number) + 2", "result": "3"}]


class PythonSamples:
    """Samples both Python kernels run: ours (pyodide) and the control (ipykernel)."""

    language_name = "python"
    file_extension = ".py"
    code_hello_world = 'print("hello, world")'
    code_stderr = 'import sys; print("oops", file=sys.stderr)'
    completion_samples = [{"text": "zi", "matches": ["zip"]}]
    complete_code_samples = ["1", "x = 1"]
    incomplete_code_samples = ["for i in range(3):", "def f(x):"]
    invalid_code_samples = ["x = = 1"]
    code_generate_error = 'raise ValueError("boom")'
    code_execute_result = [{"code": "1 + 2", "result": "3"}]
    code_inspect_sample = "print"


class PyodideKernelTests(PythonSamples, KernelTests):
    kernel_name = "pyodide"
    code_display_data = [{"code": 'display({"text/html": "<b>x</b>"}, raw=True)', "mime": "text/html"}]


class Python3KernelTests(PythonSamples, KernelTests):
    """The control: ipykernel passes the same checks."""

    kernel_name = "python3"
    code_display_data = [{"code": 'from IPython.display import HTML, display; display(HTML("<b>x</b>"))', "mime": "text/html"}]


class Collect(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.outcomes = {}

    def addSuccess(self, test):
        self.outcomes.setdefault(test.id(), "ok")

    def addSkip(self, test, reason):
        self.outcomes[test.id()] = f"skip: {reason}"

    def addFailure(self, test, err):
        self.outcomes[test.id()] = "fail: " + self._exc_info_to_string(err, test)

    addError = addFailure

    def addSubTest(self, test, subtest, err):
        if err is not None:
            skipped = issubclass(err[0], unittest.SkipTest)
            self.outcomes[subtest.id()] = f"skip: {err[1]}" if skipped else "fail: " + self._exc_info_to_string(err, test)


def main():
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromName(name, sys.modules[__name__]) for name in sys.argv[1:])
    result = Collect()
    suite.run(result)
    json.dump(result.outcomes, sys.stdout)


if __name__ == "__main__":
    main()
