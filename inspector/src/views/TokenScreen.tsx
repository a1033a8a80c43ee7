import { useState } from 'preact/hooks'
import type { ApiError } from '../api.js'

/** The 401 screen: the kernel has auth on and the page has no (valid) token; asks for one. */
export function TokenScreen({ error, onToken }: { error: ApiError; onToken: (t: string) => void }) {
  const [value, setValue] = useState('')
  return (
    <section class="card narrow" aria-labelledby="auth-title" data-testid="token-screen">
      <h2 id="auth-title">401 — this kernel needs a token</h2>
      <p role="alert">{error.code}: {error.message}</p>
      <p>
        Paste the token the kernel printed at start (or a JWT for your namespace). It is kept in this
        tab's session storage only. You can also open the page as <code>/inspector/?token=…</code>.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          if (value.trim()) onToken(value.trim())
        }}
      >
        <label for="token">Token</label>
        <input id="token" type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <button type="submit">Use token</button>
      </form>
    </section>
  )
}
