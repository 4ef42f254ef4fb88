--@ Sandbox: the gateway's phase, Error Degraded and Deleting Progressing (after Stalled).
--@part beforeReconciling
-- The gateway's phase: Error is Degraded even though the operator keeps retrying (the gateway
-- recomputes it and it can recover); Deleting (a recreate) is Progressing.
if status.phase == "Error" then
  hs.status = "Degraded"
  hs.message = messageOf(ready, "The gateway reports the sandbox in error")
  return hs
end

if status.phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = messageOf(ready, "The sandbox is being deleted on the gateway")
  return hs
end
