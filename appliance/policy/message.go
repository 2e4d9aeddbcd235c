package policy

import "github.com/deskgate/deskgate/appliance/model"

// DenyMessage returns the short user-facing text (RADIUS Reply-Message,
// portal error) for a model.Deny* constant: "" for DenyNone, a generic
// text for anything unknown. An unknown user gets the same text as a
// wrong password, so replies do not reveal which usernames exist.
func DenyMessage(deny string) string {
	switch deny {
	case model.DenyNone:
		return ""
	case model.DenyUnknownUser, model.DenyWrongPassword:
		return "Wrong username or password."
	case model.DenyMemberInactive:
		return "Your membership is not active."
	case model.DenyNoMembership:
		return "You have no active membership."
	case model.DenyNotStarted:
		return "Your membership has not started yet."
	case model.DenyEnded:
		return "Your membership has ended."
	case model.DenyNotApproved:
		return "Your membership is awaiting approval."
	case model.DenyUnpaid:
		return "WiFi starts once your first invoice is paid."
	case model.DenyUnmappedPlan:
		return "Your plan is not set up for WiFi yet. Please ask the front desk."
	case model.DenyPlanNoWiFi:
		return "Your plan does not include WiFi."
	case model.DenyWrongLocation:
		return "Your membership does not include WiFi at this location."
	case model.DenyAccountDisabled:
		return "Your WiFi account is disabled."
	case model.DenyPassExpired:
		return "Your day pass has expired."
	case model.DenyDeviceLimit:
		return "Device limit reached. Disconnect another device and try again."
	}
	return "Access denied."
}
