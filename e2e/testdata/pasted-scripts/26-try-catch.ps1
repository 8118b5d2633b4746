#! expect: Could not update nobody@contoso.com: The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found.
#! expect: updated sean@contoso.com
foreach ($upn in "nobody@contoso.com", "sean@contoso.com") {
    try {
        Set-CASMailbox -Identity $upn -SmtpClientAuthenticationDisabled $false -ErrorAction Stop
        Write-Host "updated $upn"
    }
    catch {
        Write-Warning "Could not update ${upn}: $($_.Exception.Message)"
    }
}
