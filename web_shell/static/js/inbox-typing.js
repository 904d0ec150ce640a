// The agent's own typing on `/inbox` (`inbox:typing`): on while keys are pressed in the reply
// box, off after a pause, on send, or when another conversation opens. Chatwoot passes it on to
// the member (never for a private note) and to the other agents.

const IDLE_MS = 4000;

/** `call(event, payload)` answers the ack; `openId()` the conversation being written in. */
export function agentTyping(call, openId) {
  let typingIn = null; // the conversation we said we are typing in
  let isPrivate = false;
  let idle = 0;
  let supported = true;

  async function send(conversationId, typing, asNote) {
    if (!supported) return;
    const ack = await call("inbox:typing", { conversation_id: conversationId, typing,
      private: asNote });
    if (!ack.ok && ack.error.code === "not_found") supported = false; // an older server
  }

  function stop() {
    clearTimeout(idle);
    if (typingIn !== null) send(typingIn, false, isPrivate);
    typingIn = null;
  }

  /** A key in the reply box; `asNote` while a private note is being written. */
  function input(asNote = false) {
    const id = openId();
    if (id === null) return;
    if (typingIn !== id || isPrivate !== asNote) {
      stop();
      typingIn = id;
      isPrivate = asNote;
      send(id, true, asNote);
    }
    clearTimeout(idle);
    idle = setTimeout(stop, IDLE_MS);
  }

  /** The conversation this agent is typing in now, or null. */
  const active = () => typingIn;

  return { input, stop, active };
}
