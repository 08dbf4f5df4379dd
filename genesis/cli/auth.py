"""``genesis auth``: the credentials file (add, list, remove logins per broker host).

A thin layer over :mod:`genesis.auth`.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from .. import auth as _auth
from ..errors import ConfigError

EXAMPLES = """\
examples:
  genesis auth add kafka.example.org --username alice                 prompts for the password
  genesis auth add 127.0.0.1:9092 --username alice --ca ca.pem --password-stdin < pw.txt
  genesis auth add kafka.gcn.nasa.gov --mechanism OAUTHBEARER --username CLIENT_ID \\
        --token-url https://auth.gcn.nasa.gov/oauth2/token                  (OIDC client credentials)
  genesis auth list                                                    never shows passwords
  genesis auth remove kafka.example.org

gs.open(url) uses the entry whose host (and port, if the entry has one) matches a broker of the
URL, unless auth= or GENESIS_USERNAME/GENESIS_PASSWORD say otherwise. The file is {path}
(GENESIS_AUTH_FILE moves it); it is written 0600, and refused if others may read it.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``genesis auth`` and its subcommands."""
    epilog = EXAMPLES.format(path=_auth.auth_file())
    parser = subparsers.add_parser(
        "auth",
        help="manage the credentials for secured brokers",
        description="Keep logins for secured Kafka brokers in the credentials file.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="auth_command", metavar="ACTION")
    sub.required = True

    add = sub.add_parser(
        "add",
        help="add (or replace) the login for a broker host",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("host", help="broker host, optionally with :port (then it applies to that port only)")
    add.add_argument("--username", required=True, help="SASL user name (OIDC: the client id)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (OIDC: client secret) from the first line of stdin instead of a prompt",
    )
    add.add_argument(
        "--mechanism",
        default=_auth.DEFAULT_MECHANISM,
        type=str.upper,
        choices=_auth.MECHANISMS,
        help=f"SASL mechanism (default: {_auth.DEFAULT_MECHANISM})",
    )
    add.add_argument(
        "--ca",
        metavar="FILE",
        help="PEM file of the CA that signed the broker's certificate (default: the system's CA store)",
    )
    add.add_argument("--no-ssl", action="store_true", help="SASL without TLS (SASL_PLAINTEXT)")
    add.add_argument("--token-url", metavar="URL", help="OAUTHBEARER: the OIDC token endpoint")
    add.add_argument("--scope", help="OAUTHBEARER: the OIDC scope to request")
    add.set_defaults(func=_add)

    sub.add_parser("list", help="list the logins (never the passwords)").set_defaults(func=_list)

    remove = sub.add_parser("remove", help="remove the login(s) for a broker host")
    remove.add_argument("host", help="broker host; with :port, only that port's entry")
    remove.set_defaults(func=_remove)


def _host_port(text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:  # no port, or a bare IPv6 address in brackets
        return text.strip("[]"), None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{text!r} is not host[:port]")
    return host.strip("[]"), int(port)


def _read_password(args: argparse.Namespace, where: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password on: pass it with --password-stdin")
    return getpass.getpass(f"password for {args.username} at {where}: ")


def _add(args: argparse.Namespace) -> int:
    host, port = _host_port(args.host)
    where = f"{host}:{port}" if port else host
    login = _auth.Auth(
        args.username,
        _read_password(args, where),
        mechanism=args.mechanism,
        ssl=not args.no_ssl,
        ca=args.ca,
        token_url=args.token_url,
        scope=args.scope,
    )
    path = _auth.add_entry(_auth.Entry(host, login, port))
    print(f"saved the login of {args.username} for {where} in {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _auth.auth_file()
    entries = _auth.read_entries(path)
    if not entries:
        print(f"no logins in {path}; add one with: genesis auth add HOST --username USER")
        return 0
    print(f"logins in {path}:")
    print(f"{'host':<32} {'username':<20} {'mechanism':<14} {'tls':<4} ca")
    for e in entries:
        a = e.auth
        print(
            f"{e.where:<32} {a.username:<20} {a.mechanism:<14} {'yes' if a.ssl else 'no':<4} "
            f"{a.ca or ('system store' if a.ssl else '-')}"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    host, port = _host_port(args.host)
    removed = _auth.remove_entries(host, port)
    if not removed:
        raise ConfigError(f"no login for {args.host} in {_auth.auth_file()} (see genesis auth list)")
    print(f"removed {removed} login(s) for {args.host}")
    return 0
