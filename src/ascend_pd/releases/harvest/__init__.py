"""The release-facts harvester: registry sdists -> per-release facts -> vllm_ascend.json.

``registry`` lists and downloads the released sdists (sha256-verified, cached outside the tree),
``extract`` reads facts from a source tree (an unpacked sdist or an installed site-packages; it is
stdlib-only so host-truth checks can ship it to a host), ``compat`` reads the compatibility matrix
and release notes, ``build`` assembles the checked-in data file.
"""
