// The tutor chat: a question goes over the tutor websocket, the answer streams back in chunks
// into the conversation (an aria-live region), then its citations as links to the lessons.
// Mounted on any element with data-socket (and data-assignment on an assignment's page).

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function mountTutor(root) {
  const form = root.querySelector("form");
  const question = root.querySelector("textarea");
  const button = root.querySelector("button[type=submit]");
  const log = root.querySelector(".tutor-log");
  const status = root.querySelector(".tutor-status");
  const path = root.dataset.socket;
  const assignment = root.dataset.assignment || null;
  let socket = null;
  let answer = null; // the answer being streamed: {entry, text}
  let pending = null; // a question waiting for the socket to open

  function busy(on) {
    button.disabled = on;
    root.setAttribute("aria-busy", String(on));
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      if (pending) {
        socket.send(JSON.stringify(pending));
        pending = null;
      }
    });
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      socket = null;
      if (answer) {
        answer.entry.append(element("p", "field-error", "The connection closed before the answer ended; ask again."));
        answer = null;
      }
      busy(false);
    });
  }

  function receive(message) {
    if (message.type === "start") {
      status.textContent = "The tutor is answering…";
      return;
    }
    if (!answer) return;
    if (message.type === "chunk") {
      answer.text.textContent += message.text;
    } else if (message.type === "notice") {
      answer.entry.insertBefore(element("p", "muted", message.message), answer.text);
    } else if (message.type === "done") {
      if (message.citations.length) {
        const sources = element("p", "citations", "Sources: ");
        message.citations.forEach((citation, index) => {
          const link = element("a", null, citation.title);
          link.href = citation.url;
          if (index) sources.append(", ");
          sources.append(link);
        });
        answer.entry.append(sources);
      }
      finish("");
    } else if (message.type === "error") {
      const error = element("p", "field-error", message.message);
      error.setAttribute("role", "alert");
      answer.entry.append(error);
      finish("");
    }
  }

  function finish(text) {
    answer = null;
    status.textContent = text;
    busy(false);
    question.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || answer) return;
    const asked = element("div", "tutor-entry you");
    asked.append(element("strong", null, "You: "), element("span", null, text));
    const entry = element("div", "tutor-entry tutor");
    const said = element("p", "tutor-text");
    entry.append(element("strong", null, "Tutor: "), said);
    log.append(asked, entry);
    answer = { entry, text: said };
    question.value = "";
    busy(true);
    const message = { type: "ask", question: text };
    if (assignment) message.assignment = assignment;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    } else {
      pending = message;
      if (!socket) connect();
    }
  });
  root.dataset.ready = "true"; // mounted: a question now goes over the socket, not a page load
}

for (const root of document.querySelectorAll("[data-tutor]")) mountTutor(root);
