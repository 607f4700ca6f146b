// Type check of the JavaScript client's declarations (docs/local-api.md,
// "JavaScript client" has the command): compiled, never run.
import { createClient, KpeClient, KpeError, type AuthResult, type KpeEvent, type Reader, type StreamStatus } from "../client.js";

async function counter(token: string): Promise<string | undefined> {
  const agent: KpeClient = createClient({ baseUrl: "http://127.0.0.1:7531", token, lang: "id", timeoutMs: 5000 });
  agent.lang = "en";
  const readers: Reader[] = await agent.readers();
  const reader = readers.find((r) => r.role === "card")?.name;
  const stop = new AbortController();
  const following = agent.events({
    signal: stop.signal,
    lastEventId: 17,
    onEvent(ev: KpeEvent) {
      if (ev.type === "session" && ev.state === "prompt" && ev.prompt && ev.reader) {
        void agent.answerPrompt(ev.reader, ev.prompt.id, "continue");
      }
    },
    onStatus(s: StreamStatus) {
      if (s.state === "retrying") console.log(s.error?.code, s.delayMs);
    },
  });
  try {
    const res: AuthResult = await agent.authenticate({ service: "askes", operator: "clerk-01", reader, waitSeconds: 60, prompts: true });
    return res.code;
  } catch (e) {
    if (e instanceof KpeError && e.code === "reader-busy" && e.status === 409) return undefined;
    if (e instanceof KpeError && e.triesLeft !== undefined) console.log(e.triesLeft, e.retriable);
    throw e;
  } finally {
    const cancelled: boolean = await agent.cancel(reader);
    console.log(cancelled);
    stop.abort();
    await following;
  }
}

async function kiosk(): Promise<void> {
  const agent = createClient({ credentials: "same-origin", audience: "holder" });
  const view = await agent.kioskView("Virtual PCD 00 00");
  if (view.kind === "kpe" && view.photo) {
    const photo: Blob = await agent.kioskPhoto("Virtual PCD 00 00");
    URL.revokeObjectURL(URL.createObjectURL(photo));
  }
  const qr: Blob = await agent.kioskQR("7K3M-Q0ZD-9XH2-WB4*");
  console.log(qr.type, (await agent.health()).status);
}

void counter;
void kiosk;
