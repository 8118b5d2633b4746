#! expect: sean: enabled
#! expect: chris: disabled
#! expect: akol: organization default
function Get-SmtpAuthState {
    param(
        [Parameter(Mandatory = $true)]
        [string]$Identity
    )
    $cas = Get-CASMailbox -Identity $Identity
    if ($cas.SmtpClientAuthenticationDisabled -eq $true) {
        "disabled"
    }
    elseif ($cas.SmtpClientAuthenticationDisabled -eq $false) {
        "enabled"
    }
    else {
        "organization default"
    }
}
Set-CASMailbox -Identity sean -SmtpClientAuthenticationDisabled $false
Set-CASMailbox -Identity akol -SmtpClientAuthenticationDisabled $null
foreach ($user in "sean", "chris", "akol") {
    "{0}: {1}" -f $user, (Get-SmtpAuthState -Identity $user)
}
