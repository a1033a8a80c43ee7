// jupyter_kernel_test against our pyodide kernel (python3 is the control in node-kernel-conformance.test.ts).
import { test } from 'tap'
import { conformance, pythonMissing } from './kernel-process.js'

const missing = pythonMissing()
const EXPECTED = ['test_kernel_info', 'test_execute_stdout', 'test_execute_stderr', 'test_completion', 'test_is_complete', 'test_error', 'test_execute_result', 'test_display_data', 'test_inspect']

test('jupyter_kernel_test passes for pyodide', { skip: missing }, async (t) => {
  const outcomes = await conformance(['PyodideKernelTests'])
  for (const name of EXPECTED) t.equal(outcomes[`__main__.PyodideKernelTests.${name}`], 'ok', name)
  const failed = Object.entries(outcomes).filter(([, v]) => v.startsWith('fail'))
  t.same(failed, [], 'no jupyter_kernel_test failures')
})
