# shellcheck shell=sh disable=SC2154  # variables assigned through eval
# A stub of the parts of OpenWrt's /lib/functions.sh that iwfd-uci.sh and the init script
# use: config_load reads a UCI file from $UCI_CONFIG_DIR into CONFIG_<section>_<option>
# variables the way functions.sh keeps them (lists as _ITEMn + _LENGTH); config_get,
# config_get_bool and config_list_foreach read them back. Only the UCI syntax iwfd's file
# uses: config TYPE 'NAME', option NAME 'VALUE', list NAME 'VALUE', comments.

config_load() {
	eval "$(awk -v q="'" '
	function val(s) {          # strip one level of quotes
		sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
		if (s ~ /^'"'"'.*'"'"'$/ || s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
		gsub(q, q "\\" q q, s)
		return q s q
	}
	/^[ \t]*#/ || NF == 0 { next }
	$1 == "config" { sec = $3; gsub(/['"'"'"]/, "", sec); print "CONFIG_SECTIONS=\"$CONFIG_SECTIONS " sec "\""; next }
	$1 == "option" { name = $2; $1 = ""; $2 = ""; print "CONFIG_" sec "_" name "=" val($0); next }
	$1 == "list" {
		name = $2; $1 = ""; $2 = ""; n = ++len[sec "_" name]
		print "CONFIG_" sec "_" name "_ITEM" n "=" val($0)
		print "CONFIG_" sec "_" name "_LENGTH=" n
	}' "${UCI_CONFIG_DIR:-/etc/config}/$1")"
}

config_get() {
	# config_get VAR SECTION OPTION [DEFAULT]
	eval "_v=\${CONFIG_$2_$3-}"
	[ -n "$_v" ] || _v=${4:-}
	eval "$1=\$_v"
}

config_get_bool() {
	config_get "$1" "$2" "$3" "${4:-0}"
	eval "_b=\$$1"
	case "$_b" in
		1|on|true|yes|enabled) eval "$1=1" ;;
		*) eval "$1=0" ;;
	esac
}

config_list_foreach() {
	# config_list_foreach SECTION OPTION FUNCTION
	eval "_n=\${CONFIG_$1_$2_LENGTH:-0}"
	_i=1
	while [ "$_i" -le "$_n" ]; do
		eval "_item=\$CONFIG_$1_$2_ITEM$_i"
		"$3" "$_item"
		_i=$((_i + 1))
	done
}
