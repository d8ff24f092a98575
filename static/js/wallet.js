/* Tandem wallet helpers: Sign-In with Ethereum and approveAgent signing. No dependencies.
 *
 * Sign-in: asks the server for a nonce *and* the exact EIP-4361 text for the connected
 * address (the server does the EIP-55 checksum), has the wallet personal_sign it, and posts
 * message + signature to /api/v1/auth/siwe with mode "session" and the CSRF token.
 * Without an injected wallet, the same message can be signed elsewhere and pasted.
 *
 * Agent approval: signs the approveAgent EIP-712 payload with eth_signTypedData_v4. Wallets
 * insist the payload's chainId equals the chain they are on, so a fresh payload is requested
 * for that chain first when they differ.
 */
(function () {
  "use strict";

  function csrfToken() {
    // base.html puts the token in hx-headers; the cookie may be HttpOnly in production.
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  async function api(url, options) {
    const response = await fetch(url, Object.assign({
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json"},
    }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && (body.detail || body.code) ? body.detail || body.code : "Request failed (" + response.status + ")";
      const error = new Error(detail);
      error.code = body && body.code;
      throw error;
    }
    return body;
  }

  function utf8Hex(text) {
    const bytes = new TextEncoder().encode(text);
    return "0x" + Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function safeNext(next) {
    // Only same-site paths: never an absolute or protocol-relative URL.
    return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard/";
  }

  function walletError(error) {
    if (error && error.code === 4001) return "You declined the request in your wallet.";
    return (error && error.message) || "Something went wrong.";
  }

  // ------------------------------------------------------------------ sign-in

  function initSignIn(root) {
    const errorBox = root.querySelector("[data-role=wallet-error]");
    const fallback = root.querySelector("[data-role=fallback]");
    const addressInput = root.querySelector("[data-role=address]");
    const messageBox = root.querySelector("[data-role=message]");
    const signatureInput = root.querySelector("[data-role=signature]");
    const nonceUrl = root.dataset.nonceUrl;
    const siweUrl = root.dataset.siweUrl;
    const next = safeNext(root.dataset.next);

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
    }

    async function challenge(address, chainId) {
      const params = new URLSearchParams({address: address});
      if (chainId !== undefined && chainId !== null) params.set("chain_id", String(chainId));
      return api(nonceUrl + "?" + params.toString(), {method: "GET"});
    }

    async function submit(message, signature) {
      await api(siweUrl, {method: "POST", body: JSON.stringify({message: message, signature: signature, mode: "session"})});
      window.location.assign(next);
    }

    root.querySelector("[data-action=wallet-sign-in]").addEventListener("click", async function (event) {
      const button = event.currentTarget;
      showError("");
      const eth = window.ethereum;
      if (!eth) {
        fallback.open = true;
        showError("No browser wallet found. Use the steps below to sign with another wallet.");
        addressInput.focus();
        return;
      }
      button.disabled = true;
      try {
        const accounts = await eth.request({method: "eth_requestAccounts"});
        const walletChain = parseInt(await eth.request({method: "eth_chainId"}), 16);
        const first = await challenge(accounts[0]);
        // Use the wallet's chain when the server accepts it, else the server's first choice.
        const chainId = first.chain_ids.indexOf(walletChain) >= 0 ? walletChain : first.chain_ids[0];
        const ready = chainId === first.chain_ids[0] ? first : await challenge(accounts[0], chainId);
        const signature = await eth.request({method: "personal_sign", params: [utf8Hex(ready.message), accounts[0]]});
        await submit(ready.message, signature);
      } catch (error) {
        showError(walletError(error));
      } finally {
        button.disabled = false;
      }
    });

    root.querySelector("[data-action=build-message]").addEventListener("click", async function () {
      showError("");
      try {
        const ready = await challenge(addressInput.value.trim());
        messageBox.value = ready.message;
        messageBox.focus();
        messageBox.select();
      } catch (error) {
        showError(walletError(error));
      }
    });

    root.querySelector("[data-action=submit-signature]").addEventListener("click", async function () {
      showError("");
      if (!messageBox.value) { showError("Prepare the message first."); return; }
      try {
        await submit(messageBox.value, signatureInput.value.trim());
      } catch (error) {
        showError(walletError(error));
      }
    });
  }

  // ------------------------------------------------------------------ agent approval

  function initApproval(root) {
    const errorBox = root.querySelector("[data-role=approval-error]");
    const form = document.getElementById(root.dataset.form);
    const approvalUrl = root.dataset.approvalUrl;
    const signer = (root.dataset.signer || "").toLowerCase();
    let typedData = JSON.parse(document.getElementById(root.dataset.typedData).textContent);

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
    }

    root.querySelector("[data-action=sign-approval]").addEventListener("click", async function (event) {
      const button = event.currentTarget;
      showError("");
      const eth = window.ethereum;
      if (!eth) {
        showError("No browser wallet found: copy the typed data, sign it with eth_signTypedData_v4 elsewhere and paste the signature.");
        return;
      }
      button.disabled = true;
      try {
        const accounts = await eth.request({method: "eth_requestAccounts"});
        const account = accounts.find(function (a) { return a.toLowerCase() === signer; });
        if (!account) throw new Error("Switch your wallet to " + root.dataset.signer + ", the wallet you signed in with.");
        const walletChain = parseInt(await eth.request({method: "eth_chainId"}), 16);
        if (typedData.domain.chainId !== walletChain) {
          const fresh = await api(approvalUrl, {method: "POST", body: JSON.stringify({signature_chain_id: walletChain})});
          typedData = fresh.typed_data;
        }
        const signature = await eth.request({method: "eth_signTypedData_v4", params: [account, JSON.stringify(typedData)]});
        form.querySelector("[name=signature]").value = signature;
        form.submit();
      } catch (error) {
        showError(walletError(error));
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const signIn = document.getElementById("wallet-signin");
    if (signIn) initSignIn(signIn);
    const approval = document.getElementById("agent-approval");
    if (approval) initApproval(approval);
  });
})();
