--@ PolicyProposal: a proposal waiting for reviewers is Suspended (after Reconciling, before Ready).
--@part beforeReady
-- A proposal waiting for people is Suspended (Argo CD's "paused until someone acts"; kstatus
-- reads it as Current, so a Flux health check does not wait for a reviewer): no decision yet,
-- or an approval short of the namespace's quorum. Only a chunk pending on the gateway waits: a
-- superseded one was rejected by the gateway and needs no decision.
local spec = obj.spec or {}
if status.gatewayStatus == "Pending" then
  if spec.decision == nil or spec.decision == "Pending" then
    hs.status = "Suspended"
    hs.message = "Waiting for a reviewer's decision"
    return hs
  end
  local approvals = 0
  if spec.approvals ~= nil then
    approvals = #spec.approvals
  end
  if spec.decision == "Approved" and status.requiredApprovals ~= nil and approvals < status.requiredApprovals then
    hs.status = "Suspended"
    hs.message = "Waiting for approvals: " .. tostring(approvals) .. " of " .. tostring(status.requiredApprovals)
    return hs
  end
end
