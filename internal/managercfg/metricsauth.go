package managercfg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/util/webhook"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The caches, timeout and retries of controller-runtime's
// filters.WithAuthenticationAndAuthorization (its backoff is k8s.io/apiserver's
// DefaultAuthWebhookRetryBackoff).
const (
	tokenCacheTTL = time.Minute
	allowCacheTTL = 5 * time.Minute
	denyCacheTTL  = 30 * time.Second
	reviewTimeout = 10 * time.Second
)

func reviewBackoff() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// errTokenReviewFailed marks a TokenReview that could not be made (the API server unreachable,
// or answering the call with an error), as against a review that rejected the token.
var errTokenReviewFailed = errors.New("token review failed")

// metricsAuthFilter is the secure metrics endpoint's filter: controller-runtime's
// filters.WithAuthenticationAndAuthorization (TokenReview, then SubjectAccessReview of the
// request's verb and path, with the same caches and retries) but for one answer. Its
// authenticator (k8s.io/apiserver's delegating one) reports a token the TokenReview rejects as
// an error, exactly as it reports a failed call, and the filter answers every error 500. Here
// the TokenReview call is our own (tokenReviewer), so only a review that could not be made is
// 500; a missing or rejected token is 401 and a token without the permission 403.
func metricsAuthFilter(config *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authnClient, err := authenticationv1.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authentication client: %w", err)
	}
	authzClient, err := authorizationv1.NewForConfigAndClient(config, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metrics authorization client: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: authzClient,
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       new(reviewBackoff()),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("metrics authorizer: %w", err)
	}
	// A rejection is cached like an acceptance; a failed review is not (cacheErrs false).
	tokens := tokencache.New(tokenReviewer{authnClient.TokenReviews()}, false, tokenCacheTTL, tokenCacheTTL)
	authn := group.NewAuthenticatedGroupAdder(bearertoken.New(tokens))

	return func(log logr.Logger, handler http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			res, ok, err := authn.AuthenticateRequest(req)
			if errors.Is(err, errTokenReviewFailed) {
				log.Error(err, "Authentication failed")
				http.Error(w, "Authentication failed", http.StatusInternalServerError)
				return
			}
			if !ok {
				// No bearer token, or one the TokenReview rejected (err says which).
				log.V(4).Info("Unauthorized", "reason", err)
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			attrs := authorizer.AttributesRecord{User: res.User, Verb: strings.ToLower(req.Method), Path: req.URL.Path}
			decision, reason, err := authz.Authorize(req.Context(), attrs)
			if err != nil {
				msg := fmt.Sprintf("Authorization for user %s failed", attrs.User.GetName())
				log.Error(err, msg)
				http.Error(w, msg, http.StatusInternalServerError)
				return
			}
			if decision != authorizer.DecisionAllow {
				msg := fmt.Sprintf("Authorization denied for user %s", attrs.User.GetName())
				log.V(4).Info(msg, "reason", reason)
				http.Error(w, msg, http.StatusForbidden)
				return
			}
			handler.ServeHTTP(w, req)
		}), nil
	}, nil
}

// tokenReviewer authenticates a bearer token with a TokenReview. A rejected token is
// "not authenticated" without an error (bearertoken turns it into "invalid bearer token");
// only a call that failed, retries included, is an error, wrapping errTokenReviewFailed.
type tokenReviewer struct {
	reviews authenticationv1.TokenReviewInterface
}

// AuthenticateToken implements authenticator.Token.
func (r tokenReviewer) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	var review *authnv1.TokenReview
	err := webhook.WithExponentialBackoff(ctx, reviewBackoff(), func() error {
		var err error
		review, err = r.reviews.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		return err
	}, webhook.DefaultShouldRetry)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errTokenReviewFailed, err)
	}
	if !review.Status.Authenticated {
		return nil, false, nil
	}
	u := review.Status.User
	var extra map[string][]string
	if len(u.Extra) > 0 {
		extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = v
		}
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra}}, true, nil
}
