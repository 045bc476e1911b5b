"""Requests that are several requests: a completions ``prompt`` list, and ``n > 1``.

A P/D pair cannot serve them as one request: the prefill answers with the
``kv_transfer_params`` of the first prompt only, the decode applies them to every prompt
(200 with the wrong text for every prompt after the first, and the other prompts' blocks
left held), and one set of params cannot seed ``n`` samples. Choice:

* **non-streamed**: split into one request per (prompt, sample), each its own P/D pair run
  concurrently, merged back in vLLM's order -- choice ``index = prompt * n + sample``, usage
  summed (prompt tokens once per prompt, as vLLM counts them). With a ``seed``, sample ``j``
  gets ``seed + j``, as vLLM's V1 engine seeds the child requests of ``n > 1``
  (``vllm/v1/engine/parallel_sampling.py``);
* **streamed**: refused with a 400 that says how to send it. Merging several SSE streams
  into one (interleaved events, renumbered indexes, one usage event, one ``[DONE]``, a
  failure of one stream after others have sent bytes) is possible but not done yet; a clear
  refusal beats a stream that is sometimes wrong.
"""

from __future__ import annotations

from typing import Any

from ascend_pd.proxy.inbound import BadRequest


def split(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The per-(prompt, sample) bodies, in answer order; None for a single request."""
    prompt = body.get("prompt")
    prompts: list[Any] = [prompt]
    if "messages" not in body and isinstance(prompt, list) and len(prompt) > 1 \
            and not all(isinstance(p, int) for p in prompt):
        prompts = prompt  # strings or token lists: one engine request each in vLLM
    n = body.get("n", 1)
    if not isinstance(n, int) or n < 1:
        return None  # the backend answers that 400 itself
    if len(prompts) == 1 and n == 1:
        return None
    if body.get("stream"):
        what = "a list of prompts" if len(prompts) > 1 else "n > 1"
        raise BadRequest(f"streaming {what} is not supported through the P/D proxy: send "
                         "one streamed request per prompt and sample, or stream: false")
    seed = body.get("seed")
    out = []
    for one in prompts:
        for sample in range(n):
            sub = {**body, "n": 1}
            if "messages" not in body:
                sub["prompt"] = one
            if isinstance(seed, int):
                sub["seed"] = seed + sample
            out.append(sub)
    return out


def merge(answers: list[dict[str, Any]], *, prompts: int) -> dict[str, Any]:
    """One answer from the sub-answers (in ``split`` order)."""
    merged = dict(answers[0])
    choices: list[dict[str, Any]] = []
    for part in answers:
        for choice in part.get("choices") or []:
            choices.append({**choice, "index": len(choices)})
    merged["choices"] = choices
    per_prompt = len(answers) // max(prompts, 1)
    prompt_tokens = cached = completion = 0
    for i, part in enumerate(answers):
        usage = part.get("usage") or {}
        completion += int(usage.get("completion_tokens") or 0)
        if i % per_prompt == 0:  # the first sample of each prompt
            prompt_tokens += int(usage.get("prompt_tokens") or 0)
            details = usage.get("prompt_tokens_details") or {}
            cached += int(details.get("cached_tokens") or 0) if isinstance(details, dict) \
                else 0
    usage = dict(answers[0].get("usage") or {})
    usage.update(prompt_tokens=prompt_tokens, completion_tokens=completion,
                 total_tokens=prompt_tokens + completion)
    if isinstance(usage.get("prompt_tokens_details"), dict):
        usage["prompt_tokens_details"] = {**usage["prompt_tokens_details"],
                                          "cached_tokens": cached}
    merged["usage"] = usage
    return merged


def prompt_count(body: dict[str, Any]) -> int:
    prompt = body.get("prompt")
    if "messages" not in body and isinstance(prompt, list) and len(prompt) > 1 \
            and not all(isinstance(p, int) for p in prompt):
        return len(prompt)
    return 1
