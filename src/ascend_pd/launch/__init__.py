"""Launch, watch and stop P/D instances and the proxy on their hosts."""
