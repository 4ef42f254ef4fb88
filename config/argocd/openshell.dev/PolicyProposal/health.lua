-- Argo CD health check for openshell.dev/v1alpha1 PolicyProposal (openshell-operator).
-- Generated from config/argocd/src/common.lua and config/argocd/src/PolicyProposal.lua by
-- `go test ./test/gitops -run TestGeneratedFiles -update`; do not edit.
-- kstatus order (what Flux reads): deletion, missing status and an unobserved generation are
-- Progressing; then Stalled=True is Degraded, Reconciling=True is Progressing and Ready=True is
-- Healthy. The message is the deciding condition's message. Base and table libraries only:
-- Argo CD runs argocd-cm health checks without the string library.
local hs = {}

local function findCondition(conditions, conditionType)
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function messageOf(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return fallback
end

local function isTrue(condition)
  return condition ~= nil and condition.status == "True"
end

local status = obj.status
local conditions = {}
if status ~= nil and status.conditions ~= nil then
  conditions = status.conditions
end
local ready = findCondition(conditions, "Ready")
local reconciling = findCondition(conditions, "Reconciling")
local stalled = findCondition(conditions, "Stalled")

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  if isTrue(reconciling) then
    hs.message = messageOf(reconciling, "Deletion in progress")
  elseif isTrue(stalled) then
    hs.message = messageOf(stalled, "Deletion in progress")
  else
    hs.message = "Deletion in progress"
  end
  return hs
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

if obj.metadata.generation ~= nil and status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation) ..
    " (status is for generation " .. tostring(status.observedGeneration) .. ")"
  return hs
end

if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = messageOf(stalled, "Stalled")
  return hs
end

if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = messageOf(reconciling, "Reconciling")
  return hs
end

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

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = messageOf(ready, "Waiting for the Ready condition")
return hs
