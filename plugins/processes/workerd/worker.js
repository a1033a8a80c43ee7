// Sample worker served by `{ "type": "workerd" }` when the request gives no code or script.
export default {
  async fetch(request) {
    const url = new URL(request.url)
    return Response.json({ hello: 'from workerd', method: request.method, path: url.pathname })
  },
}
