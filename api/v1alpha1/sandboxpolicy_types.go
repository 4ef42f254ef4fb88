package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AbsolutePath is an absolute filesystem path without ".." segments.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=4096
// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must be absolute"
// +kubebuilder:validation:XValidation:rule="!self.contains('/../') && !self.endsWith('/..')",message="path must not contain '..'"
type AbsolutePath string

// BinaryPath is the absolute path of an executable, without ".." segments.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=1024
// +kubebuilder:validation:Pattern=`^/`
// +kubebuilder:validation:XValidation:rule="!self.contains('/../') && !self.endsWith('/..')",message="path must not contain '..'"
type BinaryPath string

// SandboxPolicySpec is the gateway's SandboxPolicy: what a sandbox may read, write, run and
// reach on the network. Filesystem paths can only be added to a running sandbox; landlock
// and process changes need a new sandbox; network policies change in place.
type SandboxPolicySpec struct {
	// Filesystem access.
	// +optional
	Filesystem *FilesystemPolicy `json:"filesystem,omitempty"`
	// Landlock settings.
	// +optional
	Landlock *LandlockPolicy `json:"landlock,omitempty"`
	// Process identity. The gateway only accepts user and group "sandbox" (the default).
	// +optional
	Process *ProcessPolicy `json:"process,omitempty"`
	// NetworkPolicies are the allowed network destinations, by rule name.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	NetworkPolicies map[string]NetworkPolicyRule `json:"networkPolicies,omitempty"`
}

// FilesystemPolicy lists the paths a sandbox may read and write.
// +kubebuilder:validation:XValidation:rule="(has(self.readOnly) ? size(self.readOnly) : 0) + (has(self.readWrite) ? size(self.readWrite) : 0) <= 256",message="at most 256 paths in total"
type FilesystemPolicy struct {
	// IncludeWorkdir automatically adds the working directory as read-write.
	// +optional
	IncludeWorkdir bool `json:"includeWorkdir,omitempty"`
	// ReadOnly paths (unique).
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	ReadOnly []AbsolutePath `json:"readOnly,omitempty"`
	// ReadWrite paths (unique); "/" is not allowed.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="!self.exists(p, p == '/')",message="readWrite must not include '/'"
	// +optional
	ReadWrite []AbsolutePath `json:"readWrite,omitempty"`
}

// LandlockPolicy configures the Landlock LSM.
type LandlockPolicy struct {
	// Compatibility mode: best_effort degrades on kernels without Landlock,
	// hard_requirement refuses to start.
	// +kubebuilder:validation:Enum=best_effort;hard_requirement
	// +optional
	Compatibility string `json:"compatibility,omitempty"`
}

// ProcessPolicy sets the identity sandbox processes run as.
type ProcessPolicy struct {
	// RunAsUser; the gateway accepts only "sandbox".
	// +kubebuilder:validation:Enum=sandbox
	// +optional
	RunAsUser string `json:"runAsUser,omitempty"`
	// RunAsGroup; the gateway accepts only "sandbox".
	// +kubebuilder:validation:Enum=sandbox
	// +optional
	RunAsGroup string `json:"runAsGroup,omitempty"`
}

// NetworkPolicyRule allows a set of binaries to reach a set of endpoints.
type NetworkPolicyRule struct {
	// Name of the rule (defaults to its key).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`
	// Endpoints the rule allows.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Endpoints []NetworkEndpoint `json:"endpoints,omitempty"`
	// Binaries allowed to use the rule, unique by path; any binary when empty.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=path
	// +optional
	Binaries []NetworkBinary `json:"binaries,omitempty"`
}

// Port is a TCP port.
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=65535
type Port int32

// NetworkEndpoint is a destination host and ports, with optional L7 inspection.
// +kubebuilder:validation:XValidation:rule="has(self.port) || (has(self.ports) && size(self.ports) > 0)",message="port or ports is required"
type NetworkEndpoint struct {
	// Host name or glob (for example api.example.com or *.example.com); TLD-wide wildcards
	// such as *.com are rejected.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!(self.startsWith('*.') && self.split('.').size() <= 2) && !(self.startsWith('*.') && self.endsWith('.') && self.split('.').size() <= 3)",message="TLD-wide wildcard hosts are not allowed"
	Host string `json:"host"`
	// Port (single).
	// +optional
	Port Port `json:"port,omitempty"`
	// Ports (several, unique).
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Ports []Port `json:"ports,omitempty"`
	// Protocol for L7 inspection (for example rest, graphql, websocket); empty means L4 only.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// TLS handling (for example terminate or passthrough).
	// +kubebuilder:validation:MaxLength=32
	// +optional
	TLS string `json:"tls,omitempty"`
	// Enforcement mode (for example enforce or audit).
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Enforcement string `json:"enforcement,omitempty"`
	// Access preset (for example read-only or read-write).
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Access string `json:"access,omitempty"`
	// Rules are L7 allow rules.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Rules []L7Rule `json:"rules,omitempty"`
	// AllowedIPs restrict the resolved addresses: IP addresses (10.0.0.5, 2001:db8::5) or
	// CIDRs (10.0.0.0/8, 2001:db8::/32; host bits may be set, as the gateway allows).
	// Written forms the gateway's parser takes but nothing should write are refused too:
	// leading zeros (010.0.0.0/8, 10.0.0.0/08) and IPv4-mapped IPv6 (::ffff:10.0.0.1),
	// which never matches the IPv4 address a host resolves to.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || isCIDR(self)",message="allowedIps entries must be IP addresses or CIDRs, for example 10.0.0.5, 10.0.0.0/8 or 2001:db8::/32"
	// +optional
	AllowedIPs []string `json:"allowedIps,omitempty"`
	// DenyRules are L7 deny rules evaluated before allow rules.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	DenyRules []L7DenyRule `json:"denyRules,omitempty"`
	// AllowEncodedSlash permits %2F in request paths.
	// +optional
	AllowEncodedSlash bool `json:"allowEncodedSlash,omitempty"`
	// PersistedQueries selects how GraphQL persisted queries are handled.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	PersistedQueries string `json:"persistedQueries,omitempty"`
	// GraphqlPersistedQueries maps persisted query ids to the operation they stand for.
	// +optional
	GraphqlPersistedQueries map[string]GraphqlOperation `json:"graphqlPersistedQueries,omitempty"`
	// GraphqlMaxBodyBytes caps the GraphQL request body inspected (the gateway's field is a
	// 32-bit unsigned integer).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	GraphqlMaxBodyBytes int64 `json:"graphqlMaxBodyBytes,omitempty"`
	// Path restricts the endpoint to a URL path prefix.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Path string `json:"path,omitempty"`
	// WebsocketCredentialRewrite rewrites provider credentials in websocket frames.
	// +optional
	WebsocketCredentialRewrite bool `json:"websocketCredentialRewrite,omitempty"`
	// RequestBodyCredentialRewrite rewrites provider credentials in request bodies.
	// +optional
	RequestBodyCredentialRewrite bool `json:"requestBodyCredentialRewrite,omitempty"`
	// AdvisorProposed marks endpoints proposed by the policy advisor.
	// +optional
	AdvisorProposed bool `json:"advisorProposed,omitempty"`
}

// GraphqlOperation describes one GraphQL operation.
type GraphqlOperation struct {
	// OperationType: query, mutation or subscription.
	// +kubebuilder:validation:Enum=query;mutation;subscription
	// +optional
	OperationType string `json:"operationType,omitempty"`
	// OperationName of the operation.
	// +optional
	OperationName string `json:"operationName,omitempty"`
	// Fields the operation selects.
	// +optional
	Fields []string `json:"fields,omitempty"`
}

// L7Rule wraps one allow rule.
type L7Rule struct {
	// Allow describes the requests to allow.
	Allow L7Allow `json:"allow"`
}

// L7Match matches HTTP, command-based or GraphQL requests; allow and deny rules share it.
type L7Match struct {
	// Method is the HTTP method (or * for any).
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Method string `json:"method,omitempty"`
	// Path glob.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Path string `json:"path,omitempty"`
	// Command for command-based protocols.
	// +optional
	Command string `json:"command,omitempty"`
	// Query parameter matchers by parameter name.
	// +optional
	Query map[string]L7QueryMatcher `json:"query,omitempty"`
	// OperationType for GraphQL.
	// +kubebuilder:validation:Enum=query;mutation;subscription
	// +optional
	OperationType string `json:"operationType,omitempty"`
	// OperationName for GraphQL.
	// +optional
	OperationName string `json:"operationName,omitempty"`
	// Fields for GraphQL.
	// +optional
	Fields []string `json:"fields,omitempty"`
}

// L7Allow matches requests to allow.
type L7Allow L7Match

// L7DenyRule matches requests to deny; deny rules are evaluated before allow rules.
type L7DenyRule L7Match

// L7QueryMatcher matches a query parameter by glob or by a list of values.
type L7QueryMatcher struct {
	// Glob the value must match.
	// +optional
	Glob string `json:"glob,omitempty"`
	// Any of these values.
	// +optional
	Any []string `json:"any,omitempty"`
}

// NetworkBinary is an executable allowed by a rule.
type NetworkBinary struct {
	// Path of the executable (absolute).
	Path BinaryPath `json:"path"`
}

// PolicyLoadCounts counts the sandboxes using a policy by load status.
type PolicyLoadCounts struct {
	// Total sandboxes referencing the policy.
	// +optional
	Total int32 `json:"total,omitempty"`
	// Loaded: the sandbox runs the current revision.
	// +optional
	Loaded int32 `json:"loaded,omitempty"`
	// Pending: the revision was pushed, not yet loaded.
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// Failed: the sandbox failed to load the revision.
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// SandboxPolicyStatus summarises the policy and its users.
type SandboxPolicyStatus struct {
	CommonStatus `json:",inline"`
	// Hash is the canonical hash of the spec (stable under map order).
	// +optional
	Hash string `json:"hash,omitempty"`
	// Sandboxes counts referencing sandboxes by load status.
	// +optional
	Sandboxes PolicyLoadCounts `json:"sandboxes,omitempty"`
}

// SandboxPolicy is a reusable, versioned policy that sandboxes reference by name.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ospol,categories=openshell
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Sandboxes",type=integer,JSONPath=`.status.sandboxes.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SandboxPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy document.
	Spec SandboxPolicySpec `json:"spec"`
	// Status is the observed state.
	// Until the operator's first write it reads {observedGeneration: 0}, so kstatus (Flux) and
	// Argo CD read a new object as not yet observed, never as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status SandboxPolicyStatus `json:"status,omitempty"`
}

// SandboxPolicyList is a list of SandboxPolicies.
// +kubebuilder:object:root=true
type SandboxPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []SandboxPolicy `json:"items"`
}

func init() {
	register(&SandboxPolicy{}, &SandboxPolicyList{})
}
