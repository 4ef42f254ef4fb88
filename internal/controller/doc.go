// Package controller holds the operator's reconcilers: one per kind, all run by one kernel.
//
// # The kernel (kernel.go)
//
// Every kind runs through the same skeleton: get the object, handle deletion and the
// finalizer, run the kind's observe-and-act step, then write status once with the same rules
// for every kind (conditions, observedGeneration, events, the outcome metric, the retry). A
// kind supplies only a kindSteps implementation: sync (observe the gateway, act, record what
// it saw in the object's status and return a step) and, for kinds that own gateway objects,
// finalize. Status derivation stays pure: each kind's <kind>_status.go turns an observation
// into status fields and an outcome without I/O, and its table tests compare whole results.
//
// # Errors (gateway_errors.go)
//
// One table maps a gateway error (gRPC code, or a TLS handshake failure) to the Ready reason,
// whether the object is Stalled, and how it is retried. Kinds never return gateway errors to
// controller-runtime: they return the classified failure and the kernel requeues it with
// per-object exponential backoff, so an outage is one condition, not a log line per retry.
// Kubernetes API errors are returned and retried by controller-runtime.
//
// # The seam (gateway_seam.go)
//
// Reconcilers reach a gateway through small consumer-side interfaces (sandboxGateway,
// providerGateway, policyGateway, inferenceGateway, configGateway), bundled per connection in
// a gatewayAPI. Unit tests substitute in-memory fakes (fake_gateway_test.go); the envtest,
// integration and resilience suites run the real client against the simulator over mTLS.
//
// # Files
//
//   - kernel.go, outcome.go, events.go, gateway_errors.go, gateway_seam.go, references.go,
//     backoff.go, metrics.go, naming.go: shared by every kind.
//   - <kind>_controller.go: the kind's steps and watches; <kind>_status.go and
//     <kind>_mapping.go: its pure derivations and CR↔gateway mappings.
//   - connections.go: the registry of gateway clients; observer.go: the per-gateway
//     observation loop (list + watch) the Sandbox and Provider kinds read.
//
// AGENTS.md at the repository root spells out the contract for adding a kind.
package controller
