// jupyter_kernel_test against our javascript and typescript kernels, with ipykernel (python3) as the control.
import { test } from 'tap'
import { conformance, pythonMissing } from './kernel-process.js'

const missing = pythonMissing()

/** Tests each class must pass (the rest skip because the kernel declares no sample — history is off). */
const EXPECTED = ['test_kernel_info', 'test_execute_stdout', 'test_execute_stderr', 'test_completion', 'test_is_complete', 'test_error', 'test_execute_result', 'test_display_data', 'test_inspect']

test('jupyter_kernel_test passes for javascript, typescript and the python3 control', { skip: missing }, async (t) => {
  const outcomes = await conformance(['JavaScriptKernelTests', 'TypeScriptKernelTests', 'Python3KernelTests'])
  for (const cls of ['JavaScriptKernelTests', 'TypeScriptKernelTests', 'Python3KernelTests']) {
    for (const name of EXPECTED) t.equal(outcomes[`__main__.${cls}.${name}`], 'ok', `${cls}.${name}`)
  }
  for (const cls of ['JavaScriptKernelTests', 'TypeScriptKernelTests']) t.equal(outcomes[`__main__.${cls}.test_clear_output`], 'ok', `${cls}.test_clear_output`)
  const failed = Object.entries(outcomes).filter(([, v]) => v.startsWith('fail'))
  t.same(failed, [], 'no jupyter_kernel_test failures')
})
