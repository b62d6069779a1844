# shellcheck shell=sh
# iwfd-uci.sh - /etc/config/iwfd (UCI) -> iwfd's JSON configuration (iwfd.json(5)).
# Sourced by /etc/init.d/iwfd after /lib/functions.sh; tests/openwrt/test_uci.sh runs it
# with a stub of OpenWrt's config_* functions.
#
#   iwfd_uci_json SECTION    print the JSON object for the iwfd section SECTION on stdout
#
# Each UCI option maps to one key; options left empty are left out (iwfd's defaults then
# apply), so that iwfd itself checks every value and names the key when one is wrong.

# A JSON string literal: backslash and double quote escaped, control characters dropped.
iwfd_json_str() {
	printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# Integers and booleans go out as they are when they look like one, else as a string, so
# that iwfd's message names the key ("an integer 60..65535 expected").
iwfd_json_num() {
	case "$1" in
		''|*[!0-9]*) iwfd_json_str "$1" ;;
		*) printf '%s' "$1" ;;
	esac
}

iwfd_json_bool() {
	case "$1" in
		1|on|true|yes|enabled) printf 'true' ;;
		0|off|false|no|disabled) printf 'false' ;;
		*) iwfd_json_str "$1" ;;
	esac
}

# Appends to $iwfd_list (a JSON array body) - config_list_foreach's callback.
iwfd_list_add() {
	[ -n "$1" ] || return 0
	iwfd_list="$iwfd_list${iwfd_list:+, }$(iwfd_json_str "$1")"
}

iwfd_json_list() {
	iwfd_list=""
	config_list_foreach "$1" "$2" iwfd_list_add
	[ -n "$iwfd_list" ] && printf '[%s]' "$iwfd_list"
}

iwfd_uci_json() {
	s=$1
	out="" pcp="" nat="" sec=""
	add() { out="$out${out:+,
}  \"$1\": $2"; }

	v=$(iwfd_json_list "$s" lan_interface) && add lan_interfaces "$v"
	config_get v "$s" lan_address; [ -n "$v" ] && add lan_address "$(iwfd_json_str "$v")"
	config_get v "$s" http_port; [ -n "$v" ] && add http_port "$(iwfd_json_num "$v")"
	v=$(iwfd_json_list "$s" pcp_server) && add pcp_servers "$v"
	config_get v "$s" pcp_servers_file; [ -n "$v" ] && add pcp_servers_file "$(iwfd_json_str "$v")"
	config_get v "$s" state_file; [ -n "$v" ] && add state_file "$(iwfd_json_str "$v")"
	config_get v "$s" igd_version; [ -n "$v" ] && add igd_version "$(iwfd_json_num "$v")"
	config_get v "$s" wan_type; [ -n "$v" ] && add wan_type "$(iwfd_json_str "$v")"
	config_get v "$s" log_level; [ -n "$v" ] && add log_level "$(iwfd_json_str "$v")"
	config_get v "$s" friendly_name; [ -n "$v" ] && add friendly_name "$(iwfd_json_str "$v")"
	config_get v "$s" status_page; [ -n "$v" ] && add status_page "$(iwfd_json_bool "$v")"

	for o in lifetime answer_deadline_ms service_wait_s replay_rate announce_spread_s; do
		config_get v "$s" "$o"
		[ -n "$v" ] && pcp="$pcp${pcp:+, }\"$o\": $(iwfd_json_num "$v")"
	done
	config_get v "$s" listen_announce
	[ -n "$v" ] && pcp="$pcp${pcp:+, }\"listen_announce\": $(iwfd_json_bool "$v")"
	[ -n "$pcp" ] && add pcp "{$pcp}"

	config_get v "$s" nat_mode; [ -n "$v" ] && nat="\"mode\": $(iwfd_json_str "$v")"
	config_get v "$s" wan_device
	[ -n "$v" ] && nat="$nat${nat:+, }\"wan_interface\": $(iwfd_json_str "$v")"
	config_get v "$s" nat_port_min
	[ -n "$v" ] && nat="$nat${nat:+, }\"port_min\": $(iwfd_json_num "$v")"
	config_get v "$s" nat_port_max
	[ -n "$v" ] && nat="$nat${nat:+, }\"port_max\": $(iwfd_json_num "$v")"
	[ -n "$nat" ] && add nat "{$nat}"

	config_get v "$s" allow_third_party
	[ -n "$v" ] && sec="\"allow_third_party\": $(iwfd_json_bool "$v")"
	v=$(iwfd_json_list "$s" rule) && sec="$sec${sec:+, }\"rules\": $v"
	[ -n "$sec" ] && add security "{$sec}"

	printf '{\n%s\n}\n' "$out"
}
