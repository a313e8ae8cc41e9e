"""Where and how a run executes: hooks, device placement and offload, FSDP sharding, the process group, timers and
memory sampling. Nothing here knows a pruning method."""
