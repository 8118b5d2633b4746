#! fails: an unquoted $true or $false on a bash or sh command line is expanded by that shell to nothing. Quote it so that it reaches Postern: -SmtpClientAuthenticationDisabled '$false'
# The Microsoft command, pasted into bash: bash expands $false to nothing.
$POSTERN Set-CASMailbox -Identity chris@contoso.com -SmtpClientAuthenticationDisabled $false
