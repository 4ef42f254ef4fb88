package gateway

import (
	"context"

	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
)

// ProvidersAPI manages credential providers. Every read returns credential values as
// "REDACTED": never send a read provider back in Update, send only the keys to change.
type ProvidersAPI struct{ c *Client }

// Create stores a provider; the answer's credential values are REDACTED.
func (a *ProvidersAPI) Create(ctx context.Context, p *datamodelv1.Provider) (*datamodelv1.Provider, error) {
	resp, err := a.c.rpc.CreateProvider(ctx, &openshellv1.CreateProviderRequest{Provider: p})
	if err != nil {
		return nil, wrap(err, "create provider %q", p.GetMetadata().GetName())
	}
	return resp.GetProvider(), nil
}

// Get returns a provider by name.
func (a *ProvidersAPI) Get(ctx context.Context, name string) (*datamodelv1.Provider, error) {
	resp, err := a.c.rpc.GetProvider(ctx, &openshellv1.GetProviderRequest{Name: name})
	if err != nil {
		return nil, wrap(err, "get provider %q", name)
	}
	return resp.GetProvider(), nil
}

// List returns one page of providers, oldest first.
func (a *ProvidersAPI) List(ctx context.Context, limit, offset uint32) ([]*datamodelv1.Provider, error) {
	resp, err := a.c.rpc.ListProviders(ctx, &openshellv1.ListProvidersRequest{Limit: limit, Offset: offset})
	if err != nil {
		return nil, wrap(err, "list providers")
	}
	return resp.GetProviders(), nil
}

// ListAll pages through every provider, pageSize at a time (0: 100).
func (a *ProvidersAPI) ListAll(ctx context.Context, pageSize uint32) ([]*datamodelv1.Provider, error) {
	if pageSize == 0 {
		pageSize = 100
	}
	var all []*datamodelv1.Provider
	for offset := uint32(0); ; offset += pageSize {
		page, err := a.List(ctx, pageSize, offset)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if uint32(len(page)) < pageSize {
			return all, nil
		}
	}
}

// Update merges p into the stored provider named p.metadata.name: credentials and config are
// merged key by key, an empty value deletes the key, an empty map changes nothing. A non-zero
// p.metadata.resource_version is checked (ABORTED on mismatch).
func (a *ProvidersAPI) Update(ctx context.Context, p *datamodelv1.Provider) (*datamodelv1.Provider, error) {
	resp, err := a.c.rpc.UpdateProvider(ctx, &openshellv1.UpdateProviderRequest{Provider: p})
	if err != nil {
		return nil, wrap(err, "update provider %q", p.GetMetadata().GetName())
	}
	return resp.GetProvider(), nil
}

// Delete deletes a provider; false means it did not exist. FAILED_PRECONDITION while a
// sandbox uses it.
func (a *ProvidersAPI) Delete(ctx context.Context, name string) (bool, error) {
	resp, err := a.c.rpc.DeleteProvider(ctx, &openshellv1.DeleteProviderRequest{Name: name})
	if err != nil {
		return false, wrap(err, "delete provider %q", name)
	}
	return resp.GetDeleted(), nil
}
