"""Browser journeys: the ASGI app (HTTP + websockets) on a live port, Debian's Chromium driven by
Playwright, and an injected EIP-1193 wallet (``window.ethereum``) whose keys live in Python.

The injected provider answers ``eth_requestAccounts``/``eth_chainId`` itself and hands every
signature request to Python through ``page.expose_function``, where eth-account signs it with a
real private key: the server verifies a genuine signature, exactly as with MetaMask.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get(
        "TANDEM_ARTIFACTS", Path(__file__).resolve().parents[3] / "artifacts" / "browser"
    )
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

PROVIDER_JS = """
(() => {
  const address = %(address)s;
  const chainId = %(chain)s;
  const listeners = {};
  window.ethereum = {
    isMetaMask: false,
    isTandemBrowserWallet: true,
    async request({method, params}) {
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [address];
        case "eth_chainId":
          return chainId;
        case "personal_sign":
          return await window.__tandemPersonalSign(params[0]);
        case "eth_signTypedData_v4":
          return await window.__tandemSignTypedData(typeof params[1] === "string"
            ? params[1] : JSON.stringify(params[1]));
        case "wallet_switchEthereumChain":
          return null;
        default:
          throw Object.assign(new Error("unsupported method " + method), {code: 4200});
      }
    },
    on(event, handler) { (listeners[event] = listeners[event] || []).push(handler); },
    removeListener(event, handler) {
      listeners[event] = (listeners[event] || []).filter((h) => h !== handler);
    },
  };
})();
"""


class LiveServer:
    """uvicorn serving config.asgi in a thread of the test process (sharing its test DB)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from config import embedded

        self.host = host
        self.port = port or embedded.free_port()
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            "config.asgi:application",
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class BrowserWallet:
    """A wallet a test controls: the browser sees it as window.ethereum."""

    def __init__(self, account: Any | None = None, chain_id: int = 1) -> None:
        self.account = account or Account.create()
        self.chain_id = chain_id
        self.signed: list[str] = []

    @property
    def address(self) -> str:
        return str(self.account.address)

    def personal_sign(self, hex_message: str) -> str:
        text = bytes.fromhex(hex_message.removeprefix("0x")).decode("utf-8")
        self.signed.append("personal_sign")
        return "0x" + self.account.sign_message(
            encode_defunct(text=text)
        ).signature.hex().removeprefix("0x")

    def sign_typed_data(self, payload: str) -> str:
        data = json.loads(payload)
        self.signed.append("eth_signTypedData_v4")
        signable = encode_typed_data(full_message=data)
        return "0x" + self.account.sign_message(signable).signature.hex().removeprefix("0x")

    def install(self, page: Any) -> None:
        page.expose_function("__tandemPersonalSign", self.personal_sign)
        page.expose_function("__tandemSignTypedData", self.sign_typed_data)
        page.add_init_script(
            PROVIDER_JS
            % {"address": json.dumps(self.address), "chain": json.dumps(hex(self.chain_id))}
        )


class Journey:
    """Numbered screenshots of each step, written to the artifacts folder."""

    def __init__(self, name: str, page: Any) -> None:
        self.name = name
        self.page = page
        self.step = 0
        self.folder = ARTIFACTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def shot(self, label: str) -> Path:
        self.step += 1
        path = self.folder / f"{self.step:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def browser_context() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            yield context
            context.close()
        finally:
            browser.close()
