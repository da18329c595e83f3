"""An SMTP server for the email channel's tests (aiosmtpd), with fault modes.

It prints one JSON object per line on stdout, flushed at once:
  {"listening": PORT}                    when it accepts connections (--port 0 picks one)
  {"refused": CODE, "rcpt_tos": [...]}   a message it refused on purpose (at DATA, also
                                         with its "message_id")
  {"stalled": true}                      a message it will never answer
  {"message": {...}}                     a message it accepted: envelope, queue id, TLS and
                                         AUTH state, every header (decoded), every leaf part
                                         (content type, decoded text with plain newlines), and
                                         the raw bytes as text
It runs until stdin closes or it is killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append(
            {
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                # As a mail reader shows it: lines end in \n, not the wire's \r\n.
                "content": part.get_content().replace("\r\n", "\n"),
            }
        )
    return {
        "content_type": msg.get_content_type(),
        "headers": [[name, str(value)] for name, value in msg.items()],
        "parts": parts,
    }


class Sink:
    def __init__(self, args):
        self.args = args
        self.data_seen = 0
        self.accepted = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject_all:
            emit({"refused": self.args.reject_all, "rcpt_tos": [address]})
            return f"{self.args.reject_all} {self.args.reject_text}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen += 1
        if self.data_seen <= self.args.stall_first:
            emit({"stalled": True})
            # Never answer: the client must give up on its own.
            await asyncio.Event().wait()
        if self.data_seen <= self.args.stall_first + self.args.refuse_first:
            raw = envelope.original_content or envelope.content
            headers = email.message_from_bytes(raw, policy=email.policy.default)
            emit(
                {
                    "refused": self.args.refuse_code,
                    "rcpt_tos": envelope.rcpt_tos,
                    "message_id": headers["Message-ID"],
                }
            )
            return f"{self.args.refuse_code} {self.args.refuse_text}"
        self.accepted += 1
        queue_id = f"Q{self.accepted:04d}"
        raw = envelope.original_content or envelope.content
        emit(
            {
                "message": {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "queue_id": queue_id,
                    "tls": session.ssl is not None or self.args.implicit_tls is not None,
                    "auth": session.auth_data.login.decode()
                    if isinstance(session.auth_data, LoginPassword)
                    else None,
                    "raw": raw.decode("utf-8", "replace"),
                    **parse(raw),
                }
            }
        )
        return f"250 2.0.0 Ok: queued as {queue_id}"


def tls_context(cert_key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert_key)
    return context


def authenticator(expected):
    user, _, password = expected.partition(":")

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    return check


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reuse-port", action="store_true",
                   help="share --port (SO_REUSEPORT) with a socket the test holds to keep it "
                        "reserved while nothing listens on it")
    p.add_argument("--refuse-first", type=int, default=0, metavar="N",
                   help="answer the first N messages' DATA with --refuse-code")
    p.add_argument("--refuse-code", type=int, default=451)
    p.add_argument("--refuse-text", default="4.3.0 Mail server temporarily unavailable")
    p.add_argument("--reject-all", type=int, metavar="CODE",
                   help="refuse every recipient with CODE (e.g. 550)")
    p.add_argument("--reject-text", default="5.1.1 Mailbox does not exist")
    p.add_argument("--stall-first", type=int, default=0, metavar="N",
                   help="never answer the first N messages' DATA")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"),
                   help="offer and require STARTTLS with this certificate")
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"),
                   help="speak TLS from the first byte with this certificate")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require AUTH with these")
    args = p.parse_args()
    # aiosmtpd sets its own deprecated Session.login_data on every AUTH and warns about it.
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )

    loop = asyncio.get_running_loop()
    sink = Sink(args)

    def protocol():
        return SMTP(
            sink,
            hostname="sink.test",
            loop=loop,
            tls_context=tls_context(args.starttls) if args.starttls else None,
            require_starttls=bool(args.starttls),
            authenticator=authenticator(args.auth) if args.auth else None,
            auth_required=bool(args.auth),
            # Over implicit TLS the connection is encrypted before aiosmtpd sees it.
            auth_require_tls=not args.implicit_tls,
        )

    server = await loop.create_server(
        protocol,
        host=args.host,
        port=args.port,
        reuse_port=args.reuse_port or None,
        ssl=tls_context(args.implicit_tls) if args.implicit_tls else None,
    )
    emit({"listening": server.sockets[0].getsockname()[1]})

    # Ends when the test closes stdin (or drops the process).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
