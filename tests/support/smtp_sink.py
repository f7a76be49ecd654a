"""A real SMTP server on loopback for Agora's tests (Debian's python3-aiosmtpd).

    python3 smtp_sink.py OUT_DIR [PORT] [starttls|tls CERT KEY]

Prints the port it listens on, then writes each accepted message to OUT_DIR as JSON (envelope,
headers, text and HTML parts). OUT_DIR/mode switches behaviour while it runs: "accept"
(default), "refuse" (451 to every DATA), or "delay SECONDS" (answer DATA late). Exits when its
standard input closes, so it never outlives the test that started it.
"""
import asyncio
import email
import json
import os
import socket
import sys
import threading
import time
from email import policy

from aiosmtpd.controller import Controller

OUT = sys.argv[1]
MODE = os.path.join(OUT, "mode")


def mode():
    try:
        with open(MODE) as f:
            return f.read().strip() or "accept"
    except FileNotFoundError:
        return "accept"


class Sink:
    async def handle_DATA(self, server, session, envelope):
        current = mode()
        if current.startswith("delay"):
            await asyncio.sleep(float(current.split()[1]))
        if current == "refuse":
            return "451 4.3.0 Try again later"
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "content_type": msg.get_content_type(),
            "list_unsubscribe": msg["list-unsubscribe"] and str(msg["list-unsubscribe"]),
            "list_unsubscribe_post": msg["list-unsubscribe-post"] and str(msg["list-unsubscribe-post"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        name = os.path.join(OUT, f"{time.time_ns()}.json")
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 OK"


def main():
    if len(sys.argv) > 2 and sys.argv[2] != "0":
        port = int(sys.argv[2])
    else:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
    options = {}
    if len(sys.argv) > 5:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if sys.argv[3] == "starttls":
            options = {"tls_context": context, "require_starttls": True}
        else:
            options = {"ssl_context": context}
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(port, flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    controller.stop()


main()
